"""What to follow, as people edit it: ``tracker sources add|remove|import|export``.

Addresses become sources here (feed probing, OPML), and edits are spliced into the
hand-written ``sources.yaml`` without disturbing its comments.
"""
