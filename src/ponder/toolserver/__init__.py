"""ponder.toolserver"""
