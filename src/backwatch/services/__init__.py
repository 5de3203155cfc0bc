"""The only place state changes. The API, the CLI and the pages all call these."""
