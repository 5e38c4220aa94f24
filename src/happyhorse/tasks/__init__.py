"""A task's life: submit (debit) → run → complete, or fail and refund exactly once. No SQL, no HTTP."""
