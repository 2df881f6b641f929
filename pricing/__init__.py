"""Price optimisation: data, features, models, tuning, evaluation, the model store and the price sweep."""
