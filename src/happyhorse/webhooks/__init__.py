"""Signed webhooks: per-task ``callback_url`` and per-account endpoints, delivered from a durable outbox.

- ``signing``  Standard Webhooks signatures and ``whsec_`` secrets
- ``urls``     what a webhook URL may be (submit-time rules; the SSRF guard at delivery)
- ``store.webhooks`` (below ``tasks``) writes the outbox, in the same transaction as the terminal state
- ``sender``   one HTTP attempt, pinned to a checked address, no redirects
- ``deliverer`` the loop that claims due deliveries and retries with backoff
"""
