"""What both secureroute programs share, knowing neither: settings machinery and shared groups,
listen and TLS, logs, the admin (metrics and probes) listener, workers, tracing set-up.

``service`` and ``http_facade`` build on it; the one program (``secureroute``) sits above both.
The import-linter layers contract in pyproject.toml keeps every import pointing down.

Usage:
    from runtime.process import run_program
    from runtime.settings import ProgramSettings, load
"""
