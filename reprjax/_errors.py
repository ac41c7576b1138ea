"""The error type of the input boundary (no dependencies, so the command line can import it cheaply)."""


class ConfigError(ValueError):
    """Bad input at the boundary (a TOML value, a command-line option, an output directory): the command line
    reports it in one line and exits with code 2.  Numerical ``ValueError``s raised while running are not these."""
