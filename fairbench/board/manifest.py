"""The schema of a bundle's ``manifest.json`` (format ``fairbench-bundle/1``), checked whole.

A manifest comes from a stranger, so it is validated in full, with pydantic in strict mode, before
anything it names is read: every key known (an unknown one is a typo or a smuggled field), every
value of its type (``ipc: 10.0`` and ``seed: "zero"`` are refused, not coerced), every string and
list bounded, every path inside ``synsets/``. Names and notes are plain text of bounded length;
they are escaped wherever they are rendered (:mod:`fairbench.board.render`). The same limits apply
to ``fairbench submit --meta``, so a bundle that submit writes always passes.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ..core.errors import FairbenchError

FORMAT = "fairbench-bundle/1"
MAX_MANIFEST_BYTES = 1 << 20  # a 1000-cell manifest is ~3 MB pretty-printed; real ones are ~5 KB per cell
MAX_CELLS = 200
MAX_RUNS = 1000  # evaluation runs of one claim
MAX_NAME = 200  # an entry name, an author
MAX_NOTES = 2000
MAX_URL = 500
MAX_AUTHORS = 50
MAX_BLOCK_JSON = 16_384  # serialised size of one free-form block (protocol part, provenance, timing)
SEED_LIMIT = 2**32  # seeds are 0 ≤ seed < 2**32, as numpy's and the run's


def _one_line(text: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("must be one line of text, without control characters")
    return text


def _text_block(text: str) -> str:
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in text):
        raise ValueError("must be text, without control characters")
    return text


def _bounded_json(value: dict) -> dict:
    if len(json.dumps(value, default=str)) > MAX_BLOCK_JSON:
        raise ValueError(f"holds more than {MAX_BLOCK_JSON} characters of JSON")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Id = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\w.+:\-]+$")]
Line = Annotated[str, StringConstraints(max_length=MAX_NAME), AfterValidator(_one_line)]
Url = Annotated[str, StringConstraints(max_length=MAX_URL), AfterValidator(_one_line)]
Notes = Annotated[str, StringConstraints(max_length=MAX_NOTES), AfterValidator(_text_block)]
Seed = Annotated[int, Field(ge=0, lt=SEED_LIMIT)]
Number = Annotated[float, AfterValidator(_finite)]
Block = Annotated[dict[str, Any], AfterValidator(_bounded_json)]
SynsetPath = Annotated[str, StringConstraints(max_length=255, pattern=r"^synsets/[\w+\-][\w.+\-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Claim(_Strict):
    mean: Number
    std: Annotated[float, Field(ge=0), AfterValidator(_finite)]
    runs: Annotated[list[Number], Field(min_length=1, max_length=MAX_RUNS)]


class DatasetRef(_Strict):
    name: Id
    params: Block


class MethodRef(_Strict):
    id: Id
    hparams: Block


class EvaluatorRef(_Strict):
    name: Id
    arch: Id
    model: Block
    train: Block
    metrics: Block


class Protocol(_Strict):
    """A cell's protocol (:func:`fairbench.core.protocol.protocol_of` of a run's resolved cell)."""

    dataset: DatasetRef
    method: MethodRef
    net: EvaluatorRef | None
    ipc: Annotated[int, Field(ge=1, le=100_000)]
    evaluator: EvaluatorRef
    suite: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL), AfterValidator(_one_line)]


class CellModel(_Strict):
    dataset: Id
    dataset_params: Block
    ipc: Annotated[int, Field(ge=1, le=100_000)]
    method: Id
    seed: Seed
    evaluator: Id
    synset: SynsetPath
    synset_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    protocol_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{10}$")]
    protocol: Protocol
    claimed: Annotated[dict[Id, Claim], Field(max_length=64)]
    eval_seeds: Annotated[list[Seed], Field(min_length=1, max_length=MAX_RUNS)]
    provenance: Block
    measured_on: Block | None = None
    timing: Block | None = None


class SubmissionMeta(_Strict):
    """What a submitter says about a submission (``fairbench submit --meta``), copied into entries."""

    name: Line | None = None
    paper: Url | None = None
    code: Url | None = None
    authors: Line | Annotated[list[Line], Field(max_length=MAX_AUTHORS)] | None = None
    notes: Notes | None = None


class ManifestModel(SubmissionMeta):
    format: Literal["fairbench-bundle/1"]
    fairbench_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    created: Annotated[str, StringConstraints(max_length=64)] | None = None
    cells: Annotated[list[CellModel], Field(min_length=1, max_length=MAX_CELLS)]


META_KEYS = tuple(SubmissionMeta.model_fields)


class BundleUnreadable(FairbenchError):
    """A bundle whose layout or manifest cannot be read (``fairbench verify`` exits 2)."""


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "the manifest"
    more = error.error_count() - 1
    return f"{where}: {problem['msg']}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def check_manifest(manifest: object, source: str) -> dict:
    """``manifest`` (parsed JSON) if it fits the schema; else a one-line error naming ``source``,
    the first wrong field and how many more there are."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise BundleUnreadable(f"{source}: not a {FORMAT} manifest (its 'format' is {found!r})")
    try:
        ManifestModel.model_validate(manifest)
    except ValidationError as error:
        raise BundleUnreadable(f"{source}: malformed manifest: {_first_problem(error)}") from None
    return manifest


def check_meta(meta: dict, source: str) -> dict:
    """The submission's ``--meta`` mapping, held to the limits the manifest's copy of it must meet."""
    try:
        SubmissionMeta.model_validate(meta)
    except ValidationError as error:
        raise FairbenchError(f"{source}: {_first_problem(error)}") from None
    return meta
