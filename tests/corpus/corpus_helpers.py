"""Small helpers shared by the corpus notebooks.

Kept deliberately plain: the kind of ``utils.py`` people keep next to their
notebooks.
"""

import re

import numpy as np
import pandas as pd

#: Columns every store frame is expected to carry after cleaning.
REQUIRED_COLUMNS = ("store", "day", "units", "price")

#: Rows with more units than this are treated as data-entry mistakes.
MAX_UNITS = 500


def clean_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with snake_case column names and no duplicate rows."""
    out = df.copy()
    out.columns = [
        re.sub(r"[^0-9a-z]+", "_", str(col).strip().lower()).strip("_") for col in out.columns
    ]
    return out.drop_duplicates().reset_index(drop=True)


def make_frame(name: str, n_days: int = 30, seed: int = 0) -> pd.DataFrame:
    """Synthetic daily sales for one store, with messy column names."""
    rng = np.random.default_rng(sum(map(ord, name)) + seed)
    units = rng.poisson(40 + 10 * (ord(name[0]) % 3), size=n_days)
    price = np.round(rng.uniform(2.0, 6.0, size=n_days), 2)
    return pd.DataFrame(
        {
            " Store ": name,
            "Day": pd.date_range("2024-01-01", periods=n_days, freq="D"),
            "Units": units,
            "Price ($)": price,
        }
    )


def summarize(df: pd.DataFrame) -> dict:
    """A few headline numbers about a cleaned store frame."""
    revenue = (df["units"] * df["price"]).sum()
    return {
        "rows": len(df),
        "units": int(df["units"].sum()),
        "revenue": round(float(revenue), 2),
        "mean_price": round(float(df["price"].mean()), 3),
    }
