"""Extract EnOS Batch Processing flow instances into typed tables."""
