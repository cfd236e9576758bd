"""Labels, from what the user wrote to what the eyes read. Modules in the order data flows:

`sets` (label sets, templates, parsing) → `readable` (can the eyes read them?) → `writers`
(what a reasoner writes about labels: `names` the bridge, `texts` descriptions, subclasses
and the waffle control) kept in `store` (one sealed, resumable cache) → `plan` (what
`--knowledge` asks for, decided once) → `scoring` (label embeddings, the follow-up) →
`answers` (a free answer mapped back onto a label).
"""
