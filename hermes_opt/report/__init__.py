"""The study report a decision maker opens (``runs/<study>/report/``).

``trials`` turns stored trials into one table (outcome, parameters, metrics, replay command) and
ranks it; ``render`` draws Markdown, HTML (plotly, offline) and PNG (matplotlib) from it;
``study_report`` loads a study from storage, adds provenance and writes every file; ``deploy/``
writes the deployment artifacts of the ranked configurations when the caller asks.

May import: ``sim``, ``hermes_opt.compose``, ``hermes_opt.study`` and this folder (never
``hermes_opt.run``: a report is rebuilt from storage alone).
"""
