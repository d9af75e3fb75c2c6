"""Where tables go: a real terminal's width, or a wide page when output is piped to a file or CI log;
and the lines printed under the verdict table."""

from rich.console import Console

PIPED_WIDTH = 160


def table_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


def print_gaps(console: Console, verdicts) -> None:
    """Under the verdict table: each failing verdict's gap report (top sites, smallest set), then the
    checks that mean and resample ablation judge differently."""
    from circuitspec.render.gap import ablation_lines, gap_lines

    for v in verdicts:
        for line in gap_lines(v):
            console.print(line, highlight=False, markup=False)
    for line in ablation_lines(verdicts):
        console.print(f"[yellow]ablation choice matters:[/] {line}", highlight=False)
