"""Risk models: the margin twin, volatility, scenarios, haircuts, VaR / ES."""
