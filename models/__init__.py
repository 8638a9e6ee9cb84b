"""Everything that turns a request into audio. torch is imported only inside engines that need it."""
