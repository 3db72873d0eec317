"""Local stand-ins for vendor APIs: each module enforces one vendor's documented contract (paths,
auth, required fields, per-request limits, error bodies in the vendor's shape) as an
`answer(n, req)` function for webhook_sink.WebhookSink."""
