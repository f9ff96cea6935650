"""ponder.search"""
