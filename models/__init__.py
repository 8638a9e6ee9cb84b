"""Everything that turns a request into audio; torch is imported only by engines that need it."""
