"""Embed a catalog once, tag it many times: `store` (Parquet parts), `index` (incremental),
`tag` (label plans over stored embeddings, and search)."""
