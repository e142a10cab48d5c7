"""The order aggregate, its status rules and SKU PARAM validation: pure Python, no I/O."""
