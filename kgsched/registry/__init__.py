"""What registrants state: registration of Turtle into each registrant's graph, and bearer tokens."""
