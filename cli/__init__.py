"""The `branet` command: run the local stack and analyse images from the terminal."""
