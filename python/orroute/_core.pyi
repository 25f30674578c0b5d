# Type stubs for orroute._core (the C++ core). Keep in step with cpp/bindings/*.cpp: CI runs
# `python -m mypy.stubtest orroute._core`. Private module: use the public API in `orroute`.
from decimal import Decimal

def parse_money(amount: Decimal | int | str | float) -> Decimal: ...
