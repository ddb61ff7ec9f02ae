"""When to restart a driver host after it faulted, and when to stop trying.

A fault costs one host process; the daemon starts another at once.  A
driver that faults again straight away is restarted after ``delay``, then
twice that, and so on up to ``max_delay`` - a crash loop must not eat the
machine.  After ``limit`` faults in a row the adapter stays faulted until an
administrator runs ``ndisproxy reset``.  A run that lasted ``stable_after``
seconds ends the row: the next fault is a first fault again.
"""


class Backoff:
    """The restart schedule of one host (a ``config.RestartPolicy``)."""

    def __init__(self, policy):
        self.policy = policy
        self.faults = 0                 # in a row

    def after_fault(self, ran_for):
        """Seconds to wait before restarting a host that ran ``ran_for``
        seconds (None: never came up), or None when it is time to give up."""
        if ran_for is not None and ran_for >= self.policy.stable_after:
            self.faults = 0
        self.faults += 1
        if self.policy.limit and self.faults > self.policy.limit:
            return None
        if self.faults == 1:
            return 0.0
        return min(self.policy.delay * 2 ** (self.faults - 2), self.policy.max_delay)

    def forget(self):
        """An administrator's reset: the next fault is a first one."""
        self.faults = 0
