"""A fixture project with a manual-baseline round and two model-assisted rounds: the report equals
the numbers worked out by hand (in the comments)."""

import csv
import io

import pytest

from annotation_app.annotations.models import Target
from annotation_app.lib.roles import Role
from annotation_app.rounds.models import ModelVersion, Round, RoundStatus
from annotation_app.timing.tests.conftest import PROPOSAL, add_event, annotate_manually, annotate_with_model

DAY = 100_000  # each lesion on its own day, far outside the other lesions' look-around window


@pytest.fixture
def study(project, ct_case, annotator, manager, django_user_model):
    second = django_user_model.objects.create_user(username="second", password="second-pw-123")
    project.add_member(second, Role.ANNOTATOR)
    v1 = ModelVersion.objects.create(project=project, name="v1", checkpoint_key=f"models/{project.pk}/v1.pt")
    v2 = ModelVersion.objects.create(project=project, name="v2", checkpoint_key=f"models/{project.pk}/v2.pt")
    manual = Round.objects.create(project=project, number=1, is_manual_baseline=True, status=RoundStatus.CLOSED)
    r2 = Round.objects.create(project=project, number=2, model_version=v1, status=RoundStatus.CLOSED)
    r3 = Round.objects.create(project=project, number=3, model_version=v2)
    day = iter(range(0, 100 * DAY, DAY))

    def lesion(round_, user):
        return Target.objects.create(case=ct_case, label="lesion", round=round_, created_by=user)

    # round 1, by hand: 500, 520, 560 s
    for seconds in (500, 520, 560):
        annotate_manually(lesion(manual, annotator), annotator, next(day), seconds)
    # round 2, model v1: 100 s (edited), 80 s (the proposal kept, by `second`), 90 s (edited)
    annotate_with_model(lesion(r2, annotator), annotator, next(day), 100, model_version=v1)
    annotate_with_model(lesion(r2, second), second, next(day), 80, final=PROPOSAL, model_version=v1)
    annotate_with_model(lesion(r2, annotator), annotator, next(day), 90, model_version=v1)
    # round 3, model v2: 60, 75 (kept), 90 s
    annotate_with_model(lesion(r3, annotator), annotator, next(day), 60, model_version=v2)
    annotate_with_model(lesion(r3, annotator), annotator, next(day), 75, final=PROPOSAL, model_version=v2)
    annotate_with_model(lesion(r3, annotator), annotator, next(day), 90, model_version=v2)
    # a lesion still being drawn is not in the report
    unfinished = lesion(r3, annotator)
    add_event(unfinished, annotator, "target_opened", next(day))
    return {"manual": manual, "r2": r2, "r3": r3, "second": second}


def report_for(client, project, **params):
    response = client.get("/api/timing-report/", {"project": project.pk, **params})
    assert response.status_code == 200, response.content
    return response.json()


def group(report, number):
    (entry,) = [r for r in report["rounds"] if r["number"] == number]
    (g,) = entry["groups"]
    return entry, g


def test_the_report_equals_the_numbers_worked_out_by_hand(study, project, manager, client_for):
    report = report_for(client_for(manager), project)
    assert report["baseline_round"] == 1

    entry, g = group(report, 1)
    assert (entry["is_manual_baseline"], entry["model_version"], entry["models_used"]) == (True, None, [])
    assert (g["modality"], g["label"], g["unit"], g["n"]) == ("CT", "lesion", "lesion", 3)
    # [500, 520, 560]: mean 526.667, median 520, quartiles 510 / 540 (linear), IQR 30
    assert {k: g["time_s"][k] for k in ("mean", "median", "q1", "q3", "iqr")} == {
        "mean": 526.667, "median": 520.0, "q1": 510.0, "q3": 540.0, "iqr": 30.0,
    }  # fmt: skip
    assert g["reduction_pct"] == 0.0
    assert g["edit_fraction"] == 1.0  # every slice drawn by hand
    assert g["dice"]["n"] == 0  # nothing to compare without a proposal
    assert g["phases_mean_s"] == {"prompting": 0.0, "waiting": 0.0, "correcting": 526.6667, "reviewing": 0.0}

    entry, g = group(report, 2)
    assert (entry["model_version"], entry["models_used"]) == ("v1", ["v1"])
    # [80, 90, 100]: mean 90, median 90, q1 85, q3 95
    assert {k: g["time_s"][k] for k in ("mean", "median", "q1", "q3", "iqr")} == {
        "mean": 90.0, "median": 90.0, "q1": 85.0, "q3": 95.0, "iqr": 10.0,
    }  # fmt: skip
    # (526.667 - 90) / 526.667 = 82.91 %; medians (520 - 90) / 520 = 82.69 %
    assert (g["reduction_pct"], g["reduction_median_pct"]) == (82.91, 82.69)
    # edit fractions 1/2, 0, 1/2; Dice 0.8, 1.0, 0.8
    assert g["edit_fraction"] == pytest.approx(1 / 3, abs=1e-4)
    assert g["dice"]["values"] == [0.8, 0.8, 1.0]
    assert (g["dice"]["median"], g["dice"]["mean"], g["dice"]["q3"]) == (0.8, 0.867, 0.9)
    # prompting 6 s and waiting 10 s each; correcting = time - 16: 84, 64, 74
    assert g["phases_mean_s"] == {"prompting": 6.0, "waiting": 10.0, "correcting": 74.0, "reviewing": 0.0}
    assert g["voxels_changed_mean"] == pytest.approx(8 / 3, abs=1e-3)
    annotators = {a["username"]: a for a in g["annotators"]}
    assert (annotators["annotator"]["n"], annotators["annotator"]["time_s"]["mean"]) == (2, 95.0)
    assert (annotators["second"]["n"], annotators["second"]["time_s"]["median"]) == (1, 80.0)
    assert annotators["second"]["dice"]["values"] == [1.0]

    entry, g = group(report, 3)
    assert (entry["model_version"], entry["n"]) == ("v2", 3)  # the unfinished lesion is left out
    # [60, 75, 90]: mean = median = 75; (526.667 - 75) / 526.667 = 85.76 %, (520 - 75) / 520 = 85.58 %
    assert (g["time_s"]["mean"], g["time_s"]["median"]) == (75.0, 75.0)
    assert (g["reduction_pct"], g["reduction_median_pct"]) == (85.76, 85.58)


def test_filters_narrow_the_report_and_keep_every_choice(study, project, manager, client_for):
    second = study["second"]
    report = report_for(client_for(manager), project, annotator=second.pk)
    assert [r["n"] for r in report["rounds"]] == [0, 1, 0]
    _, g = group(report, 2)
    assert g["time_s"]["values"] == [80.0]
    assert {a["username"] for a in report["options"]["annotators"]} == {"annotator", "second"}
    assert report_for(client_for(manager), project, modality="MR")["rounds"][0]["groups"] == []


def test_the_report_as_csv_has_one_row_per_round_and_annotator(study, project, manager, client_for):
    response = client_for(manager).get("/api/timing-report/", {"project": project.pk, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    overall = [r for r in rows if r["annotator"] == "all"]
    assert [(r["round"], r["mean_s"], r["reduction_pct"]) for r in overall] == [
        ("1", "526.667", "0.0"), ("2", "90.0", "82.91"), ("3", "75.0", "85.76"),
    ]  # fmt: skip
    assert {(r["round"], r["annotator"], r["n"]) for r in rows if r["annotator"] != "all"} == {
        ("1", "annotator", "3"), ("2", "annotator", "2"), ("2", "second", "1"), ("3", "annotator", "3"),
    }  # fmt: skip


def test_only_managers_read_the_report(study, project, annotator, reviewer, client_for):
    for user in (annotator, reviewer):
        response = client_for(user).get("/api/timing-report/", {"project": project.pk})
        assert response.status_code == 403
    assert client_for(annotator).get("/api/timing-report/").status_code == 400
