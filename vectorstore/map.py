"""A 3D picture of the vector store: similar products sit together, coloured by category."""

from __future__ import annotations

from typing import Any

import numpy as np

from vectorstore.store import VectorStore


def project_3d(vectors: np.ndarray, method: str = "pca", seed: int = 42) -> np.ndarray:
    """384-d vectors -> 3-d points, by PCA (fast) or t-SNE (slower, tighter clusters)."""
    if len(vectors) < 4:
        raise ValueError("the map needs at least 4 items in the store")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=3, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(vectors) - 1) / 3)
        return TSNE(n_components=3, perplexity=perplexity, init="pca",
                    random_state=seed).fit_transform(vectors)
    raise ValueError(f"unknown projection {method!r}: use 'pca' or 'tsne'")


def store_map(store: VectorStore, *, limit: int = 2000, method: str = "pca") -> Any:
    """A plotly Figure of up to `limit` stored items; hover shows title and price."""
    import plotly.graph_objects as go

    vectors, metas = store.sample(limit)
    points = project_3d(vectors, method)
    fig = go.Figure()
    categories = sorted({str(m["category"]) for m in metas})
    for category in categories:
        rows = [i for i, m in enumerate(metas) if m["category"] == category]
        fig.add_trace(go.Scatter3d(
            x=points[rows, 0], y=points[rows, 1], z=points[rows, 2], mode="markers",
            name=category.replace("_", " "), marker={"size": 2.5, "opacity": 0.8},
            text=[f"{str(metas[i]['title'])[:80]}<br>${float(metas[i]['price']):,.2f}" for i in rows],
            hoverinfo="text",
        ))
    fig.update_layout(title=f"Catalogue map ({len(metas)} items, {method.upper()})",
                      margin={"l": 0, "r": 0, "b": 0, "t": 40}, legend={"itemsizing": "constant"},
                      scene={"xaxis": {"visible": False}, "yaxis": {"visible": False},
                             "zaxis": {"visible": False}})
    return fig
