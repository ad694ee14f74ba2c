"""The JSON Schema of ``results.json``, the machine-readable side of a report."""

__all__ = ["RESULTS_SCHEMA", "SCHEMA_VERSION"]

#: Bump when a field of ``results.json`` changes meaning or disappears;
#: readers check it before trusting the rest.
SCHEMA_VERSION = 1

_number_or_null = {"type": ["number", "null"]}
_published = {
    "type": "object",
    "required": ["method", "test_error", "source"],
    "additionalProperties": False,
    "properties": {
        "method": {"type": "string"},
        "test_error": {"type": "number", "description": "test error in percent"},
        "source": {"type": "string"},
    },
}
_epoch = {
    "type": "object",
    "required": ["epoch", "train_loss", "valid_loss", "valid_acc", "dur"],
    "additionalProperties": False,
    "properties": {
        "epoch": {"type": "integer", "minimum": 1},
        "train_loss": _number_or_null,
        "valid_loss": _number_or_null,
        "valid_acc": _number_or_null,
        "dur": _number_or_null,
    },
}
_model = {
    "type": "object",
    "required": [
        "name",
        "estimator",
        "train_size",
        "accuracy",
        "ci_low",
        "ci_high",
        "n_errors",
        "fit_time",
        "predict_time",
        "throughput",
        "model_size",
        "n_parameters",
        "per_class_recall",
        "confusion_matrix",
        "histories",
        "warnings",
        "published",
    ],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "estimator": {"type": "string", "description": "the model's repr"},
        "train_size": {"type": "integer", "minimum": 1},
        "accuracy": {"type": "number", "minimum": 0, "maximum": 1},
        "ci_low": {"type": "number", "minimum": 0, "maximum": 1},
        "ci_high": {"type": "number", "minimum": 0, "maximum": 1},
        "n_errors": {"type": "integer", "minimum": 0},
        "fit_time": {"type": "number", "minimum": 0, "description": "seconds"},
        "predict_time": {"type": "number", "minimum": 0, "description": "seconds for the whole test set"},
        "throughput": {"type": "number", "minimum": 0, "description": "test images per second"},
        "model_size": {"type": "integer", "minimum": 0, "description": "bytes, pickled"},
        "n_parameters": {"type": ["integer", "null"], "minimum": 0},
        "per_class_recall": {
            "type": "array",
            "items": _number_or_null,
            "description": "in the order of test_set.classes; null for a class absent from the test set",
        },
        "confusion_matrix": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "description": "rows: true classes, columns: predicted classes",
        },
        "histories": {"type": "array", "items": {"type": "array", "items": _epoch}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "published": {"oneOf": [_published, {"type": "null"}]},
    },
}

#: JSON Schema (draft 2020-12) of ``results.json``.
RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sk_mnist comparison results",
    "type": "object",
    "required": [
        "schema_version",
        "generator",
        "created",
        "title",
        "notes",
        "test_set",
        "confidence",
        "interval",
        "environment",
        "models",
        "mcnemar",
        "classic_results",
        "figures",
    ],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "generator": {"type": "string"},
        "created": {"type": "string", "format": "date-time"},
        "title": {"type": "string"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "test_set": {
            "type": "object",
            "required": ["n_samples", "classes"],
            "additionalProperties": False,
            "properties": {
                "n_samples": {"type": "integer", "minimum": 1},
                "classes": {"type": "array", "items": {"type": ["integer", "string"]}},
            },
        },
        "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "interval": {"enum": ["wilson", "exact"]},
        "environment": {"type": "object", "additionalProperties": {"type": ["string", "integer", "null"]}},
        "models": {"type": "array", "minItems": 1, "items": _model},
        "mcnemar": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "model_a",
                    "model_b",
                    "only_a_correct",
                    "only_b_correct",
                    "statistic",
                    "pvalue",
                    "exact",
                ],
                "additionalProperties": False,
                "properties": {
                    "model_a": {"type": "string"},
                    "model_b": {"type": "string"},
                    "only_a_correct": {"type": "integer", "minimum": 0},
                    "only_b_correct": {"type": "integer", "minimum": 0},
                    "statistic": {"type": "number", "minimum": 0},
                    "pvalue": {"type": "number", "minimum": 0, "maximum": 1},
                    "exact": {"type": "boolean"},
                },
            },
        },
        "classic_results": {
            "type": "array",
            "items": _published,
            "description": "reference error rates: as published, then this package's frontier recipe "
            "(the rows whose source starts with 'sk_mnist')",
        },
        "figures": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "figure name to PNG file name, relative to results.json",
        },
    },
}
