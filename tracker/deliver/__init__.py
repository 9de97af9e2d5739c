"""Stage 3: which stories make a digest, how it reads on each surface, and how it is sent."""
