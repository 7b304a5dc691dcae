"""The report domain: opening reports, filling them, the workflow, review queues, versions, consolidation."""
