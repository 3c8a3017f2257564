"""Load testing with real Apache JMeter: install, plans and data files, runner, JTL results, a stub API."""
