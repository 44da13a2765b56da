"""Helpers shared by the benchmark scripts in benches/*/: reading an agent's /metrics,
finding end markers through the collector's search API, and formatting medians."""

import json
import statistics
import urllib.parse
import urllib.request


def metrics(url):
    values = {}
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            values[name.split("{")[0]] = float(value)
    return values


def markers_found(search_url, word):
    query = urllib.parse.urlencode({"q": word, "limit": "100"})
    with urllib.request.urlopen(f"{search_url}?{query}", timeout=30) as response:
        hits = json.load(response)["hits"]
    return len({hit["source"] for hit in hits if word in hit["message"]})


def fmt(value, digits=2):
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def med(runs, key):
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None
