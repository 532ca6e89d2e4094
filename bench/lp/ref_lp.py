#!/usr/bin/python3
"""bench/lp reference side: faiss and scikit-learn on the features bench-lp prepared.

  ref_lp.py faiss DIR K           exact inner-product k-NN with faiss.IndexFlatIP on the
                                  L2-normalised features (K + 1 hits, self removed by
                                  index, else the last hit dropped) -> DIR/knn_faiss.npy
  ref_lp.py sklearn_knn DIR K     NearestNeighbors(algorithm='brute'), euclidean on the
                                  normalised features (the same order as the inner
                                  product), kneighbors() without X: self excluded
                                  -> DIR/knn_sklearn.npy
  ref_lp.py sklearn_ls DIR K IT   LabelSpreading(kernel='knn', n_neighbors=K, alpha=0.99,
                                  max_iter=IT) fitted on the normalised features and the
                                  seeds (every row labelled) -> DIR/labels_sklearn.npy
  ref_lp.py compare DIR K         agreement of the k-NN lists, and what a disagreement
                                  costs: the similarity of each list's k-th neighbour

Each mode prints one JSON line: wall seconds of the work (features already loaded), the
process's peak RSS (getrusage) and the RSS after loading. Threads: OMP_NUM_THREADS /
BLIS_NUM_THREADS as set by the caller (both libraries reach BLIS through libblas.so.3).
Run with Debian's /usr/bin/python3 (python3-faiss, python3-sklearn).
"""
import json
import os
import resource
import sys
import time

import numpy as np


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load(d):
    x = np.load(os.path.join(d, "features.npy")).astype(np.float32, copy=False)
    return np.ascontiguousarray(x)


def normalised(x):
    n = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    n[n == 0] = 1
    return (x / n).astype(np.float32)


def drop_self(idx, k):
    """K + 1 hits per row -> the K best that are not the row itself."""
    out = np.empty((idx.shape[0], k), dtype=np.int32)
    for i in range(idx.shape[0]):
        row = idx[i]
        keep = row[row != i]
        out[i] = keep[:k]
    return out


def main():
    mode, d, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "compare":
        return compare(d, k)
    x = load(d)
    rss_data = rss_mb()
    res = {"mode": mode}
    if mode == "faiss":
        import faiss
        t0 = time.perf_counter()
        xn = x.copy()
        faiss.normalize_L2(xn)
        index = faiss.IndexFlatIP(xn.shape[1])
        index.add(xn)
        _, idx = index.search(xn, k + 1)
        knn = drop_self(idx, k)
        res["seconds"] = time.perf_counter() - t0
        res["faiss_threads"] = faiss.omp_get_max_threads()
        res["faiss"] = faiss.__version__
        np.save(os.path.join(d, "knn_faiss.npy"), knn)
    elif mode == "sklearn_knn":
        from sklearn.neighbors import NearestNeighbors
        t0 = time.perf_counter()
        xn = normalised(x)
        nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(xn)
        _, idx = nn.kneighbors()
        res["seconds"] = time.perf_counter() - t0
        np.save(os.path.join(d, "knn_sklearn.npy"), idx.astype(np.int32))
    elif mode == "sklearn_ls":
        from sklearn.semi_supervised import LabelSpreading
        iters = int(sys.argv[4])
        seeds = np.load(os.path.join(d, "seeds.npy"))
        clean = np.load(os.path.join(d, "clean.npy"))
        t0 = time.perf_counter()
        xn = normalised(x)
        ls = LabelSpreading(kernel="knn", n_neighbors=k, alpha=0.99, max_iter=iters)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "max_iter was reached without convergence"
            ls.fit(xn, seeds)
        lab = ls.transduction_
        res["seconds"] = time.perf_counter() - t0
        res["n_iter"] = int(ls.n_iter_)
        res["lp_acc"] = float((lab == clean).mean())
        res["seed_acc"] = float((seeds == clean).mean())
        np.save(os.path.join(d, "labels_sklearn.npy"), lab.astype(np.int32))
    else:
        sys.exit("unknown mode " + mode)
    import sklearn
    res["sklearn"] = sklearn.__version__
    res["rss_data_mb"] = rss_data
    res["rss_peak_mb"] = rss_mb()
    print(json.dumps(res))


def compare(d, k):
    x = normalised(load(d)).astype(np.float64)
    lists = {}
    for name in ("kdflow", "faiss", "sklearn"):
        p = os.path.join(d, "knn_%s.npy" % name)
        if os.path.exists(p):
            lists[name] = np.load(p)[:, :k]
    n = x.shape[0]
    rows = np.arange(n)[:, None]
    out = {}
    for name, idx in lists.items():
        assert not (idx == np.arange(n)[:, None]).any(), name + ": a row is its own neighbour"
        s = np.einsum("ij,ikj->ik", x, x[idx])  # similarities in double
        out[name + "_mean_sim"] = float(s.mean())
        out[name + "_kth_sim"] = s.min(axis=1)
    names = sorted(lists)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            A, B = lists[names[a]], lists[names[b]]
            same = sum(len(np.intersect1d(A[i], B[i], assume_unique=True)) for i in range(n))
            rows_same = sum(set(A[i]) == set(B[i]) for i in range(n))
            # a differing list is as good as the other when its k-th similarity matches
            gap = np.abs(out[names[a] + "_kth_sim"] - out[names[b] + "_kth_sim"])
            key = names[a] + "_vs_" + names[b]
            out[key + "_overlap"] = same / float(n * k)
            out[key + "_rows_identical"] = rows_same / float(n)
            out[key + "_max_kth_gap"] = float(gap.max())
    for name in names:
        out.pop(name + "_kth_sim")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
