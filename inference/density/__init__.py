"""Breast density (BI-RADS composition) models: the NYU histogram model ported to Keras and a model trained here on
mini-MIAS tissue labels. The platform calls `density_predict` (inference.density.api); nothing here needs Django."""

from inference.density.api import (
    BreastDensity,
    DensityModel,
    DensityResult,
    density_model_from_file,
    density_model_get,
    density_model_load,
    density_predict,
)
from inference.density.validation import DensityValidation, density_validation
from inference.density.views import DensityInputError, view_key

__all__ = [
    "BreastDensity",
    "DensityInputError",
    "DensityModel",
    "DensityResult",
    "DensityValidation",
    "density_model_from_file",
    "density_model_get",
    "density_model_load",
    "density_predict",
    "density_validation",
    "view_key",
]
