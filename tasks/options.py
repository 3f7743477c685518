"""Multiple-choice options: their letters and how a prompt lists them."""

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def lettered(choices: list[str]) -> str:
    """ "(A) red (B) green" """
    return " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
