"""The paper's tables in miniature: a learnable synthetic expressive-dialogue task on the real
architecture at tiny size, trained through every stage and measured like the paper (`make paper-mini`)."""
