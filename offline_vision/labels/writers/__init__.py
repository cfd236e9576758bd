"""What a reasoner writes about a label set: each writer is (labels, reasoner) → texts, kept in
`labels.store`."""
