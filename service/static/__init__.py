"""The web page's files (HTML, JS, CSS), served as they are: no build step."""
