"""Where tables go: a real terminal's width, or a wide page when output is piped to a file or CI log."""

from rich.console import Console

PIPED_WIDTH = 160


def table_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)
