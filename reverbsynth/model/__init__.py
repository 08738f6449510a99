"""The progressive GAN: layers, generator, discriminator, losses, growth schedule."""
