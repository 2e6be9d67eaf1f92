"""Analysis of stored runs: statistics, summary rows, checkpoint comparison, the regression
gate. No model code."""
