"""Serializers for targets, prompts, mask revisions and interaction events.

Pixel coordinates in prompt payloads are (x, y) = (column, row) of the frame; frames index the first
axis of the case's canonical array ((z, y, x) volumes, (t, y, x) videos).
"""

import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation_app.annotations.models import (
    InteractionEvent,
    MaskRevision,
    MaskSource,
    Prompt,
    PromptKind,
    SliceComment,
    Target,
)
from annotation_app.imaging.models import Case
from annotation_app.lib.maskcodec import MaskFormatError, decode_slice_rle
from annotation_app.lib.serializers import (
    ScopedPrimaryKeyRelatedField,
    StrictModelSerializer,
    StrictSerializer,
    member_project_ids,
)
from annotation_app.projects.models import Project
from annotation_app.rounds.models import Round

EVENT_KINDS = [
    "target_opened",
    "target_closed",
    "prompt_placed",
    "propagation_requested",
    "propagation_received",
    "edit_stroke",
    "undo",
    "redo",
    "submit",
    "review_accept",
    "review_reject",
    "focus",
    "blur",
    "visibility_hidden",
    "visibility_visible",
    "idle",
    # the browser's activity tracker: `active` when input resumes after `idle`, `heartbeat` while it goes on
    "active",
    "heartbeat",
    "custom",
]
MAX_POINTS = 64


def frame_size(case: Case) -> tuple[int, int] | None:
    """(height, width) of one frame, or None while the case is not ingested yet."""
    if not case.shape or len(case.shape) < 3:
        return None
    return int(case.shape[1]), int(case.shape[2])


def check_frame(case: Case, frame: int) -> None:
    if case.shape and not 0 <= frame < case.n_frames:
        raise serializers.ValidationError({"frame": [f"frame must be in [0, {case.n_frames - 1}]."]})


class RevisionSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    source = serializers.CharField()
    voxel_count = serializers.IntegerField()


class TargetSerializer(StrictModelSerializer):
    case = ScopedPrimaryKeyRelatedField(queryset=Case.objects.select_related("project"))
    round = ScopedPrimaryKeyRelatedField(queryset=Round.objects.all(), required=False, allow_null=True)
    current_revision = serializers.SerializerMethodField()
    frame_range = serializers.SerializerMethodField()
    project_source = "case__project"
    create_only_fields = ("case", "round")

    class Meta:
        model = Target
        fields = [
            "id",
            "case",
            "label",
            "round",
            "status",
            "key_frame",
            "created_by",
            "review_comment",
            "current_revision",
            "created_at",
            "updated_at",
            "location",
            "frame_range",
        ]
        read_only_fields = [
            "id",
            "status",
            "created_by",
            "review_comment",
            "current_revision",
            "created_at",
            "updated_at",
            "frame_range",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField(), allow_null=True))
    def get_frame_range(self, target) -> list[int] | None:
        """[first, last] frame (inclusive) of the current mask, or None without a mask."""
        if hasattr(target, "cur_rev_bbox"):
            bbox = target.cur_rev_bbox if target.cur_rev_voxels else None
        else:
            revision = target.revisions.order_by("-number").only("bbox", "voxel_count").first()
            bbox = revision.bbox if revision is not None and revision.voxel_count else None
        if not bbox:
            return None
        return [int(bbox[0]), int(bbox[3]) - 1]

    def validate_location(self, value):
        if value is None:
            return None
        case = self.instance.case if self.instance else None
        size = frame_size(case) if case is not None else None
        try:
            if isinstance(value, dict) and set(value) == {"box"}:
                return _check_box(value, size)
            if isinstance(value, dict) and set(value) == {"point"}:
                point = value["point"]
                if not isinstance(point, list) or len(point) != 2:
                    raise ValueError("point must be [x, y]")
                x, y = _number(point[0]), _number(point[1])
                if size is not None and not (0 <= x < size[1] and 0 <= y < size[0]):
                    raise ValueError(f"point must lie inside the {size[1]}x{size[0]} frame")
                return {"point": [x, y]}
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        raise serializers.ValidationError('location is {"box": [x0, y0, x1, y1]} or {"point": [x, y]}.')

    @extend_schema_field(RevisionSummarySerializer(allow_null=True))
    def get_current_revision(self, target) -> dict | None:
        # The list query annotates these (one query for the page); a lone object asks the database.
        if hasattr(target, "cur_rev_id"):
            if target.cur_rev_id is None:
                return None
            return {
                "id": target.cur_rev_id,
                "number": target.cur_rev_number,
                "source": target.cur_rev_source,
                "voxel_count": target.cur_rev_voxels,
            }
        revision = target.revisions.order_by("-number").only("id", "number", "source", "voxel_count").first()
        if revision is None:
            return None
        return RevisionSummarySerializer(revision).data

    def validate(self, attrs):
        case = attrs.get("case") or self.instance.case
        label = attrs.get("label")
        if label is not None and case.project.labels and label not in case.project.label_names:
            raise serializers.ValidationError(
                {"label": [f"Not one of the project's labels: {case.project.label_names}."]}
            )
        round_ = attrs.get("round")
        if round_ is not None and round_.project_id != case.project_id:
            raise serializers.ValidationError({"round": ["Must belong to the case's project."]})
        if attrs.get("key_frame") is not None:
            try:
                check_frame(case, attrs["key_frame"])
            except serializers.ValidationError:
                raise serializers.ValidationError(
                    {"key_frame": [f"key_frame must be in [0, {case.n_frames - 1}]."]}
                ) from None
        return attrs


class ReviewSerializer(StrictSerializer):
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class PromptSerializer(StrictModelSerializer):
    target = ScopedPrimaryKeyRelatedField(project_path="case__project", queryset=Target.objects.select_related("case"))
    project_source = "target__case__project"

    class Meta:
        model = Prompt
        fields = ["id", "target", "frame", "kind", "payload", "author", "created_at", "withdrawn"]
        read_only_fields = ["id", "author", "created_at", "withdrawn"]

    def validate(self, attrs):
        case = attrs["target"].case
        check_frame(case, attrs["frame"])
        size = frame_size(case)
        validator = {
            PromptKind.BOX: _check_box,
            PromptKind.POINT: _check_points,
            PromptKind.MASK: _check_mask,
        }
        try:
            attrs["payload"] = validator[attrs["kind"]](attrs["payload"], size)
        except ValueError as exc:
            raise serializers.ValidationError({"payload": [str(exc)]}) from None
        return attrs


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


def _check_keys(payload, required: set[str]) -> dict:
    if not isinstance(payload, dict):
        raise ValueError("payload must be an object")
    if set(payload) != required:
        raise ValueError(f"payload must have exactly the keys {sorted(required)}")
    return payload


def _check_box(payload, size) -> dict:
    x0, y0, x1, y1 = _four(_check_keys(payload, {"box"})["box"])
    if not (x0 < x1 and y0 < y1):
        raise ValueError("box must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
    if size is not None:
        height, width = size
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(f"box must lie inside the {width}x{height} frame")
    return {"box": [x0, y0, x1, y1]}


def _four(box) -> list[float]:
    if not isinstance(box, list) or len(box) != 4:
        raise ValueError("box must be a list [x0, y0, x1, y1]")
    return [_number(v) for v in box]


def _check_points(payload, size) -> dict:
    payload = _check_keys(payload, {"points", "labels"})
    points, labels = payload["points"], payload["labels"]
    if not isinstance(points, list) or not isinstance(labels, list) or not points or len(points) != len(labels):
        raise ValueError("points and labels must be non-empty lists of the same length")
    if len(points) > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points per prompt")
    clean = []
    for point in points:
        if not isinstance(point, list) or len(point) != 2:
            raise ValueError("each point is [x, y]")
        x, y = _number(point[0]), _number(point[1])
        if size is not None and not (0 <= x < size[1] and 0 <= y < size[0]):
            raise ValueError(f"point {[x, y]} lies outside the {size[1]}x{size[0]} frame")
        clean.append([x, y])
    if any(label not in (0, 1) or isinstance(label, bool) for label in labels):
        raise ValueError("labels are 1 (foreground) or 0 (background)")
    return {"points": clean, "labels": labels}


def _check_mask(payload, size) -> dict:
    payload = _check_keys(payload, {"rle", "height", "width"})
    height, width = payload["height"], payload["width"]
    if size is not None and (height, width) != size:
        raise ValueError(f"mask must be {size[0]}x{size[1]} (height x width)")
    if not isinstance(payload["rle"], list) or not all(
        isinstance(r, int) and not isinstance(r, bool) for r in payload["rle"]
    ):
        raise ValueError("rle must be a list of integers")
    try:
        decode_slice_rle(payload["rle"], int(height), int(width))
    except (MaskFormatError, TypeError, ValueError) as exc:
        raise ValueError(f"bad rle: {exc}") from None
    return payload


class MaskRevisionSerializer(serializers.ModelSerializer):
    """A revision's metadata; the mask itself is read per frame (GET /{id}/frames/)."""

    class Meta:
        model = MaskRevision
        fields = [
            "id",
            "target",
            "number",
            "parent",
            "source",
            "model_version",
            "author",
            "created_at",
            "bbox",
            "shape",
            "voxel_count",
            "frame_scores",
            "job_key",
            "note",
        ]
        read_only_fields = fields


class SliceRLESerializer(StrictSerializer):
    rle = serializers.ListField(child=serializers.IntegerField(min_value=0), allow_empty=False)


class MaskRevisionCreateSerializer(StrictSerializer):
    """POST body: the frames that changed (RLE, row-major, starting with a zeros run) over a base
    revision, or the whole mask as base64 of numpy.packbits of the bool array in C order (optionally
    zlib-compressed)."""

    target = ScopedPrimaryKeyRelatedField(project_path="case__project", queryset=Target.objects.select_related("case"))
    #: "review": a reviewer's fix of a submitted target (reviewers and above)
    source = serializers.ChoiceField(
        choices=[MaskSource.HUMAN, MaskSource.IMPORT, MaskSource.REVIEW], default=MaskSource.HUMAN
    )
    slices = serializers.DictField(child=SliceRLESerializer(), required=False)
    mask_b64 = serializers.CharField(required=False)
    base_revision = ScopedPrimaryKeyRelatedField(
        project_path="target__case__project", queryset=MaskRevision.objects.all(), required=False
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if ("slices" in attrs) == ("mask_b64" in attrs):
            raise serializers.ValidationError({"slices": ["Give exactly one of 'slices' or 'mask_b64'."]})
        base = attrs.get("base_revision")
        if base is not None and base.target_id != attrs["target"].pk:
            raise serializers.ValidationError({"base_revision": ["Must be a revision of the same target."]})
        if "mask_b64" in attrs and base is not None:
            raise serializers.ValidationError({"base_revision": ["Only used with 'slices'."]})
        if not attrs["target"].case.shape:
            raise serializers.ValidationError({"target": ["The case has no image yet (still ingesting)."]})
        return attrs


class SliceCommentSerializer(StrictModelSerializer):
    target = ScopedPrimaryKeyRelatedField(project_path="case__project", queryset=Target.objects.select_related("case"))
    author_username = serializers.CharField(source="author.username", read_only=True, default=None)
    project_source = "target__case__project"

    class Meta:
        model = SliceComment
        fields = ["id", "target", "frame", "x", "y", "text", "author", "author_username", "created_at"]
        read_only_fields = ["id", "author", "author_username", "created_at"]

    def validate(self, attrs):
        case = attrs["target"].case
        check_frame(case, attrs["frame"])
        size = frame_size(case)
        x, y = attrs["x"], attrs["y"]
        if not (math.isfinite(x) and math.isfinite(y)):
            raise serializers.ValidationError({"x": ["(x, y) must be finite numbers."]})
        if size is not None and not (0 <= x < size[1] and 0 <= y < size[0]):
            raise serializers.ValidationError({"x": [f"(x, y) must lie inside the {size[1]}x{size[0]} frame."]})
        if not attrs["text"].strip():
            raise serializers.ValidationError({"text": ["Say what to look at."]})
        return attrs


class EventSerializer(StrictModelSerializer):
    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all(), required=False)
    case = ScopedPrimaryKeyRelatedField(queryset=Case.objects.all(), required=False, allow_null=True)
    target = ScopedPrimaryKeyRelatedField(
        project_path="case__project",
        queryset=Target.objects.select_related("case"),
        required=False,
        allow_null=True,
    )
    kind = serializers.ChoiceField(choices=EVENT_KINDS)

    class Meta:
        model = InteractionEvent
        fields = [
            "id",
            "client_event_id",
            "kind",
            "client_ts",
            "project",
            "case",
            "target",
            "user",
            "payload",
            "received_at",
        ]
        read_only_fields = ["id", "user", "received_at"]
        # Idempotency is handled by the view (duplicates are counted, not refused).
        extra_kwargs = {"client_event_id": {"validators": []}}

    def validate_payload(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("payload must be an object.")
        return value

    def validate(self, attrs):
        target, case, project = attrs.get("target"), attrs.get("case"), attrs.get("project")
        if target is not None:
            if case is not None and case.pk != target.case_id:
                raise serializers.ValidationError({"case": ["Is not the target's case."]})
            case = attrs["case"] = target.case
        if case is not None:
            if project is not None and project.pk != case.project_id:
                raise serializers.ValidationError({"project": ["Is not the case's project."]})
            project = attrs["project"] = case.project
        if project is None:
            raise serializers.ValidationError({"project": ["Give a target, a case or a project."]})
        return attrs


def prefetch_event_relations(items: list, user) -> dict:
    """{Model: {pk: object}} for the targets, cases and projects a batch of events names, limited to
    the user's projects (see ScopedPrimaryKeyRelatedField's `prefetched` context)."""

    def ids(name: str) -> set[int]:
        found = set()
        for item in items:
            value = item.get(name) if isinstance(item, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                found.add(value)
        return found

    scope = None if user.is_superuser else member_project_ids(user)

    def scoped(queryset, path: str):
        return queryset if scope is None else queryset.filter(**{f"{path}__in": scope})

    targets = scoped(Target.objects.select_related("case__project"), "case__project").in_bulk(ids("target"))
    cases = scoped(Case.objects.select_related("project"), "project").in_bulk(ids("case"))
    projects = scoped(Project.objects.all(), "pk").in_bulk(ids("project"))
    return {Target: targets, Case: cases, Project: projects}
