"""Deployment artifacts for a study's recommended and top-k configurations
(``report/deploy/<rank>/``): engine launch scripts whose flags come from the flag table
(``conf/tables/engine_flags.yaml``, ``flag_table``), Kubernetes manifests (``kube``), a benchmark
plan that replays the simulated workload (``bench``) and the simulated record (``writer``);
docs/deploy.md.

May import: ``sim``, ``hermes_opt.compose``, ``hermes_opt.study`` and ``hermes_opt.report``
(the artifacts compose each configuration they are written for once, in ``facts``; the report's
tables never compose).
"""
