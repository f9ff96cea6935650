"""ponder.api"""
