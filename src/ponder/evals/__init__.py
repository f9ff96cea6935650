"""ponder.evals"""
