"""The default universe: about 100 real US tickers with a reference price and a listing tape.

Order matters: the list runs from the most to the least active name, and the simulator gives
each symbol a share of the event rate that falls with its rank (a Zipf-like curve, as real
activity does). Prices are rough late-2024 levels; they only set the scale of the random walk.
Tape (`z` in T/Q/A events): 1 = NYSE-listed (CTA tape A), 2 = NYSE American/Arca (tape B),
3 = Nasdaq (UTP tape C).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SymbolInfo:
    ticker: str
    price: float
    tape: int


_TABLE = """
NVDA 140 3|TSLA 250 3|AAPL 225 3|AMZN 200 3|MSFT 420 3|META 580 3|AMD 140 3|GOOGL 170 3|SPY 580 2|QQQ 500 3
PLTR 60 3|SMCI 30 3|AVGO 170 3|INTC 22 3|NFLX 800 3|MU 100 3|GOOG 172 3|COIN 250 3|MSTR 350 3|SOFI 12 3
BAC 45 1|F 11 1|NIO 5 1|T 22 1|PFE 27 1|AAL 14 3|CCL 22 1|RIVN 11 3|MARA 20 3|RIOT 11 3
UBER 72 1|BABA 90 1|DIS 100 1|JPM 235 1|XOM 120 1|WMT 85 1|CSCO 58 3|ORCL 180 1|C 68 1|WFC 70 1
KO 63 1|VZ 42 1|BA 155 1|SNAP 11 1|PYPL 85 3|SHOP 110 3|CRM 330 1|ADBE 500 3|QCOM 160 3|TXN 200 3
LCID 2.5 3|PLUG 2.1 3|GME 22 1|AMC 4.5 1|HOOD 38 3|AFRM 60 3|UPST 75 3|DKNG 40 3|ROKU 80 3|SQ 90 1
IWM 235 2|XLF 48 2|TLT 90 3|GLD 250 2|SLV 30 2|EEM 43 2|HYG 80 2|XLE 90 2|SOXL 28 2|TQQQ 80 3
JNJ 155 1|PG 170 1|UNH 590 1|V 310 1|MA 520 1|HD 400 1|COST 920 3|PEP 155 3|MRK 100 1|ABBV 175 1
LLY 800 1|CVX 160 1|GS 600 1|MS 130 1|CAT 390 1|GE 180 1|IBM 215 1|NKE 78 1|SBUX 98 3|MCD 295 1
LOW 270 1|CVS 58 1|GM 55 1|DAL 62 1|UAL 95 3|LUV 32 1|PINS 30 1|ZM 80 3|DELL 135 1|ARM 140 3
"""

DEFAULT_STOCKS: tuple[SymbolInfo, ...] = tuple(
    SymbolInfo(parts[0], float(parts[1]), int(parts[2]))
    for row in _TABLE.strip().splitlines()
    for parts in (entry.split() for entry in row.split("|"))
)

# Crypto pairs (as Polygon writes them in XT/XQ/XA `pair`) and forex pairs (C `p`, CA `pair`).
DEFAULT_CRYPTO: tuple[SymbolInfo, ...] = tuple(
    SymbolInfo(pair, price, 0)
    for pair, price in (
        ("BTC-USD", 97000.0), ("ETH-USD", 3300.0), ("SOL-USD", 240.0), ("XRP-USD", 1.4),
        ("DOGE-USD", 0.38), ("ADA-USD", 0.9), ("AVAX-USD", 40.0), ("LINK-USD", 17.0),
        ("LTC-USD", 95.0), ("DOT-USD", 7.5), ("BCH-USD", 450.0), ("UNI-USD", 11.0),
    )
)  # fmt: skip
DEFAULT_FOREX: tuple[SymbolInfo, ...] = tuple(
    SymbolInfo(pair, price, 0)
    for pair, price in (
        ("EUR/USD", 1.05), ("USD/JPY", 154.5), ("GBP/USD", 1.26), ("AUD/USD", 0.65),
        ("USD/CAD", 1.40), ("USD/CHF", 0.89), ("NZD/USD", 0.58), ("EUR/GBP", 0.83),
        ("EUR/JPY", 162.0), ("GBP/JPY", 194.0),
    )
)  # fmt: skip
DEFAULTS = {"stocks": DEFAULT_STOCKS, "crypto": DEFAULT_CRYPTO, "forex": DEFAULT_FOREX}


def resolve_symbols(spec: str | None, market: str = "stocks") -> tuple[SymbolInfo, ...]:
    """`None` -> all of the market's defaults; `"25"` -> the 25 most active; `"AAPL, MSFT"` -> those.

    A ticker outside the default table gets a price derived from its name (stable across runs)
    and tape 3. Raises ValueError naming the problem for an empty list, a bad count or a
    duplicate.
    """
    defaults = DEFAULTS[market]
    if spec is None:
        return defaults
    text = spec.strip()
    if not text:
        raise ValueError("symbols: give a count (e.g. 100) or a comma list of tickers (e.g. AAPL,MSFT)")
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= len(defaults):
            raise ValueError(f"symbols: a {market} count must be between 1 and {len(defaults)} (got {count})")
        return defaults[:count]
    known = {info.ticker: info for info in defaults}
    tickers = [part.strip().upper() for part in text.split(",")]
    if any(not ticker for ticker in tickers):
        raise ValueError(f"symbols: empty ticker in {spec!r}")
    seen: set[str] = set()
    for ticker in tickers:
        if ticker in seen:
            raise ValueError(f"symbols: {ticker} is listed twice")
        if not all(ch.isalnum() or ch in ".-/" for ch in ticker):
            raise ValueError(f"symbols: {ticker!r} is not a ticker (letters, digits, '.', '-' and '/')")
        seen.add(ticker)
    return tuple(known.get(ticker) or _invented(ticker) for ticker in tickers)


def _invented(ticker: str) -> SymbolInfo:
    """A stable made-up price between $5 and $300 for a ticker we have no level for."""
    code = sum((index + 1) * ord(ch) for index, ch in enumerate(ticker))
    return SymbolInfo(ticker, float(5 + code % 296), 3)
