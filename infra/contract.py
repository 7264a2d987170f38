"""Schemathesis hooks of infra/contract: the rules of the API that JSON Schema cannot
state. The document states each in words, and the server refuses a request that
breaks one with a documented 422; generated requests are kept within them so that a
schema-valid request is one the server should accept.
"""

import re
import uuid
from datetime import datetime, timedelta, timezone

import schemathesis
from hypothesis import strategies as st

# A show starts in the future: `starts_at` is the only instant a request carries.
_tomorrow = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=1)
schemathesis.openapi.format(
    "date-time",
    st.datetimes(min_value=_tomorrow, max_value=datetime(9999, 12, 31)).map(
        lambda instant: instant.isoformat(timespec="seconds") + "Z"
    ),
)

_VALID_KEY = re.compile(r"[!-~]{1,255}")


def _is(context, method, path):
    operation = context.operation
    return operation is not None and (operation.method.upper(), operation.path) == (method, path)


@schemathesis.hook
def map_case(context, case):
    """Each generated request is a new request, so it gets a key of its own: reusing
    a key for another request is refused (422) by design. A scan was made in the past
    (one in the future is refused), while the date-time strategy above gives instants
    from tomorrow on, for shows."""
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = key[:222] + uuid.uuid4().hex
    if _is(context, "POST", "/v1/checkins") or _is(context, "POST", "/v1/checkins/batch"):
        body = case.body
        scans = body.get("scans") if isinstance(body, dict) and "scans" in body else [body]
        for scan in scans if isinstance(scans, list) else []:
            # Only a valid instant: an invalid one is a negative case, to be refused.
            instant = scan.get("scanned_at") if isinstance(scan, dict) else None
            if isinstance(instant, str) and _DATE_TIME.fullmatch(instant):
                scan["scanned_at"] = _an_hour_ago
    return case


_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


@schemathesis.hook
def filter_case(context, case):
    """A show's section names differ regardless of case, and a section has no more
    escrow buckets than seats."""
    if not _is(context, "POST", "/v1/shows"):
        return True
    body = case.body
    sections = body.get("sections") if isinstance(body, dict) else None
    if not isinstance(sections, list):
        return True
    names = [s.get("name") for s in sections if isinstance(s, dict)]
    folded = [n.lower() for n in names if isinstance(n, str)]
    if len(set(folded)) != len(folded):
        return False
    for section in sections:
        if not isinstance(section, dict):
            continue
        buckets, capacity = section.get("buckets"), section.get("capacity")
        if _number(buckets) and _number(capacity) and buckets > capacity:
            return False
    return True


def _number(value):
    # JSON Schema's integers include whole floats such as `2.0`, which the API takes.
    return isinstance(value, (int, float)) and not isinstance(value, bool)
