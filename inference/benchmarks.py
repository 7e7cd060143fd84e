"""Published screening benchmarks, the one copy: the performance pages, the strategies page, model evaluation
reports and model cards all quote these (figures from the sources named; see ../shared/GUIDE.md)."""

BENCHMARKS = {
    "bcsc": {
        "source": "BCSC digital screening mammography 2007-2013 (Lehman et al., Radiology 2017; 1,682,504 screens)",
        "sensitivity": 0.869,
        "specificity": 0.889,
        "recall_rate": 0.116,
        "cancer_detection_per_1000": 5.1,
        "ppv1": 0.044,
    },
    "acceptable": {
        "source": "Miglioretti et al., AJR 2015 (acceptable performance ranges)",
        "sensitivity_at_least": 0.80,
        "specificity_at_least": 0.85,
        "recall_rate_range": [0.05, 0.12],
        "cancer_detection_per_1000_range": [2.5, 4.0],
        "ppv1_range": [0.03, 0.08],
    },
    "literature": {
        "source": "Shen et al., Sci Rep 2019: CBIS-DDSM whole-image benign vs malignant",
        "single_model_auc": [0.83, 0.86],
        "independent_reruns_auc": [0.69, 0.75],
        "note": "A different dataset (digitised DDSM film, far more images); a landmark, not a like-for-like target.",
    },
}
