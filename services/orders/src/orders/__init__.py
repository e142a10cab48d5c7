"""Orders service: customer orders, their line items and the job counts the queue reports back."""
