"""Dimensions stage: generate the dimension CSVs (`generate`) and load them into raw (`load`)."""
