"""Pure decisions: (event, policy, state, now) -> actions with reasons. No I/O, no clock, no boto3."""
