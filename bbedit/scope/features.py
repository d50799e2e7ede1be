"""Features of a (query, candidate edit) pair, for the scope gate.

A query is about an edit when it names the edit's subject (or an alias) *and*
asks what the edit's prompt asks about that subject. The first is a string
match; the second compares what the query says around the subject with what
the edit's prompt says around it (embeddings that leave the subject out).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bbedit.memory.memory import EditMemory, Retrieval
from bbedit.memory.relation import project_cos, relation_similarity
from bbedit.memory.subjects import NameSpeller, SubjectMatch, name_key, tokens
from bbedit.types import Edit

__all__ = ["FEATURES", "LEARNED", "PAIR", "Candidate", "candidates", "project_cos", "relation_similarity"]

FEATURES = (
    "subject_named",      # a subject name or alias occurs in the query
    "case_exact",         # ... with the same capitalisation
    "proper_extension",   # ... glued to another capitalised word ("Abraham" in "Abraham Lincoln")
    "single_token_name",  # the matched name is one word (riskier)
    "name_coverage",      # matched tokens / tokens of the subject's full name
    "cos_query",          # cosine(query, edit prompt)
    "cos_relation",       # cosine(query without subject, prompt without subject)
    "cos_relation_x_named",
    "cos_query_x_named",
    "mentions_target",    # the query contains the old or the new target
    "query_length",       # log(1 + tokens) / 4
    "relation_rank",      # 1 if this is the best cos_relation among candidates naming the same subject
    "relation_learned",   # cosine of the two subject-free embeddings after a learned relation projection
    "subject_spelled",    # 1 when named; else how closely a run of the query's words spells a name (a typo)
    "relation_pair",      # p(same relation) from the scorer's pair model over the two subject-free embeddings
)
LEARNED = FEATURES.index("relation_learned")
PAIR = FEATURES.index("relation_pair")
RelationPair = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(query contexts, edit contexts) -> p(same relation): the scorer's pair model."""


@dataclass(frozen=True)
class Candidate:
    """One edit the query might be about, with its feature vector and the two
    subject-free embeddings that were compared (query side, edit side)."""

    edit: Edit
    features: np.ndarray
    query_context: np.ndarray
    edit_context: np.ndarray


def candidates(memory: EditMemory, r: Retrieval, relation_proj: np.ndarray | None = None,
               relation_pair: RelationPair | None = None) -> list[Candidate]:
    """Feature vectors for every edit the query names or retrieves, in a stable order.

    ``relation_proj`` (dim × k) is the scorer's learned relation projection; ``relation_pair`` its pair
    model (query contexts, edit contexts) -> p(same relation), the ``relation_pair`` feature (0 without one)."""
    by_row: dict[int, SubjectMatch] = {}
    for m in r.matches:
        by_row.setdefault(m.row, m)
    rows = list(dict.fromkeys([*by_row, *(memory.row_of(h.edit) for h in r.hits)]))
    qtoks = {t for t, _, _ in tokens(r.query)}
    speller = NameSpeller(r.query)
    qlen = math.log1p(len(qtoks)) / 4.0
    rels: dict[int, float] = {}
    raw: list[tuple[Edit, list[float]]] = []
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for row in rows:
        edit = r.edits_by_row[row]
        emb, ctx = memory.edit_vectors(edit)
        cos_q = float(r.vector @ emb)
        match = by_row.get(row)
        if match is not None:
            q_ctx = r.context[(match.start, match.end)]
            cos_r = float(q_ctx @ ctx)
            full_len = max(len(name_key(edit.subject)), 1)
            named = 1.0
            feats_m = [1.0 if match.case_exact else 0.0, 1.0 if match.proper_ext else 0.0,
                       1.0 if match.n_tokens == 1 else 0.0, min(match.n_tokens / full_len, 1.0)]
        else:
            q_ctx = r.vector
            cos_r = float(q_ctx @ ctx)
            named = 0.0
            feats_m = [0.0, 0.0, 0.0, 0.0]
        rels[row] = cos_r
        pairs.append((q_ctx, ctx))
        targets = [edit.target_new] + ([edit.target_old] if edit.target_old else [])
        mentions = any(
            (k := [t for t, _, _ in tokens(tg)]) and set(k) <= qtoks for tg in targets)
        spelled = 1.0 if match is not None else speller.similarity((edit.subject, *edit.aliases))
        raw.append((edit, [named, *feats_m, cos_q, cos_r, cos_r * named, cos_q * named,
                           1.0 if mentions else 0.0, qlen, 0.0, 0.0, spelled, 0.0]))
    if not pairs:
        return []
    # relation_rank: among candidates that name the same span, is this the best relation match?
    rank = FEATURES.index("relation_rank")
    q_all, e_all = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    learned = project_cos(relation_proj, q_all, e_all)
    same = relation_pair(q_all, e_all) if relation_pair is not None else np.zeros(len(pairs))
    out = []
    for n, ((edit, f), row) in enumerate(zip(raw, rows, strict=True)):
        own = by_row.get(row)
        if own is not None:
            rivals = [rels[o] for o, mm in by_row.items() if (mm.start, mm.end) == (own.start, own.end)]
            f[rank] = 1.0 if rels[row] >= max(rivals) - 1e-9 else 0.0
        f[LEARNED] = float(learned[n])
        f[PAIR] = float(same[n])
        out.append(Candidate(edit, np.asarray(f, np.float32), pairs[n][0], pairs[n][1]))
    return out
