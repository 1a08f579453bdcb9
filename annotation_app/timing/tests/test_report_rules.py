"""Report rules beyond the hand-computed study: lesions without events, the baseline's absence."""

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.rounds.models import Round
from annotation_app.timing.tests.conftest import PROPOSAL, annotate_with_model, mask


def test_a_lesion_without_events_has_no_time_and_stays_out_of_the_time_statistics(
    project, ct_case, annotator, manager, client_for
):
    round_ = Round.objects.create(project=project, number=1)
    timed = Target.objects.create(case=ct_case, label="lesion", round=round_, created_by=annotator)
    annotate_with_model(timed, annotator, 0, 60)
    scripted = Target.objects.create(case=ct_case, label="lesion", round=round_, created_by=annotator)
    MaskRevision.append(scripted, mask(ct_case, PROPOSAL), "import", author=annotator)
    scripted.submit()
    report = client_for(manager).get("/api/timing-report/", {"project": project.pk}).json()
    (group,) = report["rounds"][0]["groups"]
    assert group["n"] == 2
    assert (group["time_s"]["n"], group["time_s"]["values"]) == (1, [60.0])
    assert group["phases_mean_s"] == {"prompting": 6.0, "waiting": 10.0, "correcting": 44.0, "reviewing": 0.0}
    assert group["dice"]["n"] == 1  # its proposal-vs-final comparison still needs a model proposal: none here
    # without a manual-baseline round there is nothing to reduce against
    assert report["baseline_round"] is None and group["reduction_pct"] is None
