"""ddpayne.model"""
