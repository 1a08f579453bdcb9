"""Targets, prompts, mask revisions and interaction events.

Annotators create targets, prompts, revisions and events on their projects' cases; reviewers accept or
reject submitted targets. Mask revisions and events are append-only: GET and POST, never PUT, PATCH or
DELETE. A submitted or accepted target is locked: new prompts and revisions are refused (409) until a
reviewer rejects it; a reviewer may still fix a submitted target (a revision with source "review").

Assignment: an annotator edits only the targets assigned to them (Target.editable_by; 403 otherwise,
unless the project's setting `annotators_edit_unassigned` is on) and starts targets only on cases
assigned to them or to nobody. Nobody accepts or rejects their own work (403).
Reviewers pin comments to a frame and position of a target (/api/slice-comments/).
"""

import json

import django_filters
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from annotation_app.annotations.api.masks import apply_slices, decode_full_mask, frames_as_rle
from annotation_app.annotations.api.serializers import (
    EventSerializer,
    MaskRevisionCreateSerializer,
    MaskRevisionSerializer,
    PromptSerializer,
    ReviewSerializer,
    SliceCommentSerializer,
    TargetSerializer,
    prefetch_event_relations,
)
from annotation_app.annotations.models import (
    InteractionEvent,
    MaskRevision,
    MaskSource,
    Prompt,
    PromptKind,
    SliceComment,
    Target,
    TargetStatus,
)
from annotation_app.lib.errors import Conflict
from annotation_app.lib.roles import Role, role_at_least
from annotation_app.lib.viewsets import AppendOnlyViewSet, CreateReadViewSet, ProjectScopedViewSet
from annotation_app.rounds.models import Round

LOCKED = (TargetStatus.SUBMITTED, TargetStatus.ACCEPTED)
MAX_EVENTS_PER_BATCH = 500


def ensure_editable(target: Target) -> None:
    if target.status in LOCKED:
        raise Conflict(f"target is {target.status}; it cannot be edited until a reviewer rejects it")


def ensure_assigned(view: ProjectScopedViewSet, target: Target) -> None:
    """403 when the caller's role and the project's assignment policy do not let them edit `target`."""
    if not target.editable_by(view.request.user, view.role_in(target.case.project_id)):
        who = target.case.assignee.get_username() if target.case.assignee_id else "the annotator who created it"
        raise PermissionDenied(f"This target is assigned to {who}; a manager can assign the case to you.")


def ensure_case_open(view: ProjectScopedViewSet, case) -> None:
    user = view.request.user
    if user.is_superuser or role_at_least(view.role_in(case.project_id), Role.REVIEWER):
        return
    if not case.open_to_annotator(user):
        raise PermissionDenied(f"Case {case.name} is assigned to {case.assignee.get_username()}.")


class TargetFilter(django_filters.FilterSet):
    project = django_filters.NumberFilter(field_name="case__project")

    class Meta:
        model = Target
        fields = ["case", "status", "round", "project", "label", "created_by"]


class TargetViewSet(ProjectScopedViewSet):
    serializer_class = TargetSerializer
    project_field = "case__project"
    filterset_class = TargetFilter
    ordering_fields = ["id", "created_at", "updated_at", "status"]
    required_roles = {
        "create": Role.ANNOTATOR,
        "update": Role.ANNOTATOR,
        "partial_update": Role.ANNOTATOR,
        "destroy": Role.MANAGER,
        "submit": Role.ANNOTATOR,
        "accept": Role.REVIEWER,
        "reject": Role.REVIEWER,
    }

    def get_queryset(self):
        latest = MaskRevision.objects.filter(target=OuterRef("pk")).order_by("-number")
        self.queryset = Target.objects.select_related("case").annotate(
            cur_rev_id=Subquery(latest.values("id")[:1]),
            cur_rev_number=Subquery(latest.values("number")[:1]),
            cur_rev_source=Subquery(latest.values("source")[:1]),
            cur_rev_voxels=Subquery(latest.values("voxel_count")[:1]),
            cur_rev_bbox=Subquery(latest.values("bbox")[:1]),
        )
        return super().get_queryset()

    def perform_create(self, serializer):
        case = serializer.validated_data["case"]
        self.check_create_permission(case.project_id)
        ensure_case_open(self, case)
        extra = {"created_by": self.request.user}
        if "round" not in serializer.validated_data:
            # A target belongs to the round that is open when it is made (None if none is open).
            extra["round"] = Round.current_for(case.project_id)
        with transaction.atomic():
            serializer.save(**extra)

    def perform_update(self, serializer):
        ensure_assigned(self, serializer.instance)
        ensure_editable(serializer.instance)
        super().perform_update(serializer)

    def _ensure_not_own_work(self, target: Target) -> None:
        if target.is_work_of(self.request.user):
            raise PermissionDenied("You cannot review your own work; another reviewer must.")

    def _reply(self, target: Target) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=target.pk)).data)

    @extend_schema(request=None, responses={200: TargetSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        target = self.get_object()
        self.action_data(ReviewSerializer)  # refuses unexpected fields; a submit has no comment
        ensure_assigned(self, target)
        target.submit()
        return self._reply(target)

    @extend_schema(request=ReviewSerializer, responses={200: TargetSerializer})
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        target = self.get_object()
        self._ensure_not_own_work(target)
        target.accept(request.user, self.action_data(ReviewSerializer)["comment"])
        return self._reply(target)

    @extend_schema(request=ReviewSerializer, responses={200: TargetSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        target = self.get_object()
        self._ensure_not_own_work(target)
        target.reject(request.user, self.action_data(ReviewSerializer)["comment"])
        return self._reply(target)


class PromptViewSet(CreateReadViewSet):
    queryset = Prompt.objects.all()
    serializer_class = PromptSerializer
    project_field = "target__case__project"
    filterset_fields = ["target", "frame", "kind", "withdrawn"]
    ordering_fields = ["id", "created_at", "frame"]
    required_roles = {"create": Role.ANNOTATOR, "withdraw": Role.ANNOTATOR, "restore": Role.ANNOTATOR}

    def perform_create(self, serializer):
        target = serializer.validated_data["target"]
        self.check_create_permission(target.case.project_id)
        ensure_assigned(self, target)
        ensure_editable(target)
        prompt = serializer.save(author=self.request.user)
        if prompt.kind == PromptKind.BOX:
            # The first box says where the object is: the target's location (and key frame) if unset.
            Target.objects.filter(pk=target.pk, location__isnull=True).update(location={"box": prompt.payload["box"]})
            Target.objects.filter(pk=target.pk, key_frame__isnull=True).update(key_frame=prompt.frame)

    def _set_withdrawn(self, value: bool) -> Response:
        prompt = self.get_object()
        ensure_assigned(self, prompt.target)
        ensure_editable(prompt.target)
        if not Prompt.objects.filter(pk=prompt.pk, withdrawn=not value).update(withdrawn=value):
            raise Conflict("prompt is already withdrawn" if value else "prompt is not withdrawn")
        prompt.refresh_from_db()
        return Response(self.get_serializer(prompt).data)

    @extend_schema(request=None, responses={200: PromptSerializer})
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        """Undo: the prompt stays stored but no longer drives the model."""
        return self._set_withdrawn(True)

    @extend_schema(request=None, responses={200: PromptSerializer})
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        """Redo of a withdrawn prompt."""
        return self._set_withdrawn(False)


class MaskRevisionViewSet(AppendOnlyViewSet):
    queryset = MaskRevision.objects.defer("data")
    serializer_class = MaskRevisionSerializer
    project_field = "target__case__project"
    filterset_fields = ["target", "source", "number"]
    ordering_fields = ["id", "number", "created_at"]
    required_roles = {"create": Role.ANNOTATOR, "frames": Role.ANNOTATOR}

    @extend_schema(request=MaskRevisionCreateSerializer, responses={201: MaskRevisionSerializer})
    def create(self, request, *args, **kwargs):
        body = self.action_data(MaskRevisionCreateSerializer)
        target = body["target"]
        review_fix = body["source"] == MaskSource.REVIEW
        self.check_create_permission(target.case.project_id)
        ensure_assigned(self, target)
        if review_fix:
            self._ensure_may_fix(target)
        else:
            ensure_editable(target)
        shape = [int(s) for s in target.case.shape[:3]]
        if "mask_b64" in body:
            mask = decode_full_mask(body["mask_b64"], shape)
        else:
            base = body.get("base_revision") or target.current_revision
            mask = apply_slices(base, body["slices"], shape)
        with transaction.atomic():
            # Re-check under the row lock: a submit that races this request must win or lose whole.
            target = Target.objects.select_for_update().select_related("case").get(pk=target.pk)
            if review_fix:
                self._ensure_may_fix(target)
            else:
                ensure_editable(target)
            revision = MaskRevision.append(target, mask, body["source"], author=request.user, note=body["note"])
            if not review_fix and target.status != TargetStatus.CORRECTING:
                target.mark_correcting()
        revision = MaskRevision.objects.defer("data").get(pk=revision.pk)
        return Response(self.get_serializer(revision).data, status=status.HTTP_201_CREATED)

    def _ensure_may_fix(self, target: Target) -> None:
        """A reviewer's fix: reviewers and above, on a submitted target, not their own work."""
        if not self.has_role(target.case.project_id, Role.REVIEWER):
            raise PermissionDenied("Only reviewers record review fixes.")
        if target.status != TargetStatus.SUBMITTED:
            raise Conflict(f"target is {target.status}; reviewers fix submitted targets only")
        if target.is_work_of(self.request.user):
            raise PermissionDenied("You cannot review your own work; another reviewer must.")

    @extend_schema(
        parameters=[
            OpenApiParameter("start", int, description="first frame (default 0)"),
            OpenApiParameter("stop", int, description="one past the last frame (default: all)"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"])
    def frames(self, request, pk=None):
        """{"<frame>": rle} for frames in [start, stop): row-major runs that start with a zeros run."""
        revision = self.get_object()
        revision = MaskRevision.objects.get(pk=revision.pk)  # with the mask bytes this time
        response = Response(frames_as_rle(revision, request.query_params))
        # A revision never changes, so the browser may keep it for good.
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        return response


class SliceCommentViewSet(CreateReadViewSet):
    """Reviewers pin comments to a frame and position; every member of the project reads them."""

    queryset = SliceComment.objects.select_related("author")
    serializer_class = SliceCommentSerializer
    project_field = "target__case__project"
    filterset_fields = ["target", "frame"]
    ordering_fields = ["id", "frame", "created_at"]
    required_roles = {"create": Role.REVIEWER}

    def perform_create(self, serializer):
        target = serializer.validated_data["target"]
        self.check_create_permission(target.case.project_id)
        serializer.save(author=self.request.user)


class EventFilter(django_filters.FilterSet):
    #: a time window on the client's clock, for timing analyses (ISO 8601)
    since = django_filters.IsoDateTimeFilter(field_name="client_ts", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="client_ts", lookup_expr="lt")

    class Meta:
        model = InteractionEvent
        fields = ["project", "case", "target", "user", "kind"]


_BatchResult = inline_serializer(
    "EventBatchResult", {"created": serializers.IntegerField(), "duplicates": serializers.IntegerField()}
)


class EventViewSet(AppendOnlyViewSet):
    queryset = InteractionEvent.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilter
    ordering_fields = ["client_ts", "id", "received_at"]
    required_roles = {"create": Role.ANNOTATOR}
    # Form bodies let the page send its last batch with navigator.sendBeacon on unload:
    # fields `events` (the JSON list) and `csrfmiddlewaretoken`.
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.request.user.is_superuser or getattr(self, "swagger_fake_view", False):
            return queryset
        # Annotators and reviewers see their own events; managers see everyone's in their projects.
        managed = [pid for pid, role in self._roles().items() if role_at_least(role, Role.MANAGER)]
        return queryset.filter(Q(user=self.request.user) | Q(project__in=managed))

    def _items(self) -> list:
        data = self.request.data
        if hasattr(data, "getlist"):  # a form body (sendBeacon)
            try:
                data = json.loads(data.get("events", ""))
            except ValueError:
                raise ParseError("the form field 'events' must hold a JSON list of events") from None
        items = data if isinstance(data, list) else [data]
        if not items:
            raise ValidationError({"detail": "Send at least one event."})
        if len(items) > MAX_EVENTS_PER_BATCH:
            raise ValidationError({"detail": f"At most {MAX_EVENTS_PER_BATCH} events per request."})
        return items

    @extend_schema(request=EventSerializer(many=True), responses={201: _BatchResult})
    def create(self, request, *args, **kwargs):
        """Store a batch of events (a list, or one object). Idempotent: an event id already stored is
        counted as a duplicate, not stored again. The whole batch is refused if any event is invalid."""
        items = self._items()
        # One serializer for the whole list, and the targets/cases/projects it names looked up in
        # three queries rather than per event: a 500-event batch stays cheap.
        context = {
            **self.get_serializer_context(),
            "prefetched": prefetch_event_relations(items, request.user),
        }
        serializer = self.get_serializer_class()(data=items, many=True, context=context)
        if not serializer.is_valid():
            found = serializer.errors  # {index: errors} (DRF >= 3.18), or a list with {} for valid items
            pairs = found.items() if isinstance(found, dict) else enumerate(found)
            raise ValidationError({str(index): errors for index, errors in pairs if errors})
        valid = serializer.validated_data
        for project_id in {item["project"].pk for item in valid}:
            if not self.has_role(project_id, Role.ANNOTATOR):
                raise PermissionDenied("You are not a member of every project these events name.")
        fresh: dict = {}
        for item in valid:
            fresh.setdefault(item["client_event_id"], item)
        stored = set(
            InteractionEvent.objects.filter(client_event_id__in=list(fresh)).values_list("client_event_id", flat=True)
        )
        rows = [InteractionEvent(user=request.user, **item) for key, item in fresh.items() if key not in stored]
        InteractionEvent.objects.bulk_create(rows, ignore_conflicts=True)
        return Response({"created": len(rows), "duplicates": len(valid) - len(rows)}, status=status.HTTP_201_CREATED)
