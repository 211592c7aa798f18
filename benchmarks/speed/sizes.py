"""The sizes every speed benchmark shares: small enough for a 2-core CI box, protocol-shaped."""

CLASSES, GROUPS, PER_CLASS, SIZE, WIDTH = 10, 2, 64, 32, 32
ROUNDS = 3  # rounds pytest-benchmark records per benchmark (the ratio checks time their own)
